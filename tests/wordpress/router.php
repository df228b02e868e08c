<?php
// The PHP built-in server's router for one test site: every request names the site's config
// (/etc/wordpress/config-<name>.php, read by Debian's wp-config.php), so one WordPress checkout
// serves many sites on many ports. Static files are served as they are.
$_SERVER['WORDPRESS_CONFIG'] = getenv('MODERATION_TEST_WP_CONFIG');
$root = '/usr/share/wordpress';
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$file = realpath($root . $path);
if ($file !== false && strpos($file, $root) === 0 && is_file($file)) {
    if (substr($file, -4) !== '.php') {
        return false;
    }
    chdir(dirname($file));
    require $file;
    return true;
}
chdir($root);
require $root . '/index.php';
