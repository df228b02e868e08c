<?php
/**
 * A persistent object cache drop-in for tests: WordPress's own WP_Object_Cache, its contents
 * kept in a file between requests, standing in for Redis or Memcached. A row changed under
 * WordPress (by SQL) stays invisible to it until something bumps the group's last_changed.
 *
 * The file is read at `muplugins_loaded`, once every core class is defined (a cached WP_Post
 * or WP_Comment cannot be unserialized before), and written back when the request ends.
 */
require_once ABSPATH . WPINC . '/class-wp-object-cache.php';

class Moderation_Test_File_Cache extends WP_Object_Cache {
    public function load_file() {
        $file = WP_CONTENT_DIR . '/object-cache.data';
        if (!is_file($file)) {
            return;
        }
        $stored = unserialize(file_get_contents($file));
        if (!is_array($stored)) {
            return;
        }
        $now = $this->cache;  // what this request read from the database so far wins
        foreach ($now as $group => $values) {
            $stored[$group] = array_merge(isset($stored[$group]) ? $stored[$group] : array(), $values);
        }
        $this->cache = $stored;
    }

    public function save_file() {
        $file = WP_CONTENT_DIR . '/object-cache.data';
        $tmp = $file . '.' . getmypid();
        file_put_contents($tmp, serialize($this->cache));
        rename($tmp, $file);
    }
}

// WordPress's own cache functions, with wp_cache_init() building the class above.
eval('?>' . str_replace(
    'new WP_Object_Cache()',
    'new Moderation_Test_File_Cache()',
    file_get_contents(ABSPATH . WPINC . '/cache.php')
));

add_action('muplugins_loaded', function () {
    $GLOBALS['wp_object_cache']->load_file();
    register_shutdown_function(function () {
        $GLOBALS['wp_object_cache']->save_file();
    });
}, -1000);
