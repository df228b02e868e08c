<?php
// php count_links.php < one JSON array of comment texts per line
// Answers each line with a JSON array, one entry per text: {"count": N} with the number of
// links WordPress's check_comment() counts (the comment_text filter with make_clickable at
// priority 9, then its preg_match_all), or {"count": null, "error": "..."} when PCRE gave up
// (then check_comment compares false, or the count of an empty text, with comment_max_links).
// WordPress's own formatting.php, kses.php, plugin.php and http.php do the work; nothing else
// of WordPress is loaded, so no database or web server is needed.
define('ABSPATH', '/usr/share/wordpress/');
define('WPINC', 'wp-includes');

function get_option($name, $default = false) {
    $options = array('blog_charset' => 'UTF-8', 'comment_max_links' => 2, 'comment_moderation' => 0);
    return array_key_exists($name, $options) ? $options[$name] : $default;
}
function wp_allowed_protocols() {
    return array('http', 'https', 'ftp', 'ftps', 'mailto', 'news', 'irc', 'irc6', 'ircs', 'gopher',
        'nntp', 'feed', 'telnet', 'mms', 'rtsp', 'sms', 'svn', 'tel', 'fax', 'xmpp', 'webcal', 'urn');
}
function __($text, $domain = 'default') {
    return $text;
}

require ABSPATH . WPINC . '/plugin.php';
require ABSPATH . WPINC . '/load.php';
require ABSPATH . WPINC . '/formatting.php';
require ABSPATH . WPINC . '/kses.php';
require ABSPATH . WPINC . '/http.php';

// The counting below is check_comment()'s; refuse to run against a WordPress that counts
// differently.
$check_comment = file_get_contents(ABSPATH . WPINC . '/comment.php');
foreach (array(
    "\$comment = apply_filters( 'comment_text', \$comment, null, array() );",
    "\$num_links = preg_match_all( '/<a [^>]*href/i', \$comment, \$out );",
) as $line) {
    if (strpos($check_comment, $line) === false) {
        fwrite(STDERR, "check_comment() no longer contains: $line\n");
        exit(2);
    }
}

add_filter('comment_text', 'make_clickable', 9);

function count_links_as_check_comment($comment) {
    // A PCRE failure inside make_clickable() surfaces later as a null passed on (a deprecation
    // or a warning), not in preg_last_error() at the end: collect whatever PHP reports.
    $reported = array();
    set_error_handler(function ($level, $message) use (&$reported) {
        $reported[] = $message;
        return true;
    });
    $comment = apply_filters('comment_text', $comment, null, array());
    $filtered = preg_last_error_msg();
    $num_links = preg_match_all('/<a [^>]*href/i', (string) $comment, $out);
    restore_error_handler();
    if ($reported || $filtered !== 'No error' || $num_links === false) {
        $reported[] = $filtered;
        return array('count' => null, 'error' => implode('; ', $reported));
    }
    return array('count' => $num_links);
}

while (($line = fgets(STDIN)) !== false) {
    $texts = json_decode($line, true);
    if (!is_array($texts)) {
        echo json_encode(array('error' => 'not a JSON array of texts')), "\n";
        continue;
    }
    echo json_encode(array_map('count_links_as_check_comment', $texts)), "\n";
    flush();
}
