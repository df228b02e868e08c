<?php
// php comments.php CONFIG_NAME HOST < [{"post": N, "content": "...", "author": "..."}, ...]
// Each through wp_new_comment(), so WordPress's own rules decide its status; prints the ids
// and statuses as JSON.
$_SERVER['WORDPRESS_CONFIG'] = $argv[1];
$_SERVER['HTTP_HOST'] = $argv[2];
require '/usr/share/wordpress/wp-load.php';
// Tests post many comments from one address within seconds: not a flood here.
add_filter('wp_is_comment_flood', '__return_false', 1000);
// Each comment its own author (name, e-mail and address), unless the test names one: the
// tool's author rules would otherwise join every test's comments into one record.
$batch = bin2hex(random_bytes(4));
$made = array();
foreach (json_decode(stream_get_contents(STDIN), true) as $i => $c) {
    $id = wp_new_comment(array(
        'comment_post_ID' => $c['post'],
        'comment_content' => $c['content'],
        'comment_author' => isset($c['author']) ? $c['author'] : 'Reader ' . $i,
        'comment_author_email' => 'reader-' . $batch . '-' . $i . '@example.test',
        'comment_author_url' => '',
        'comment_author_IP' => '10.' . random_int(0, 255) . '.' . random_int(0, 255) . '.' . (1 + $i % 250),
        'comment_agent' => 'moderation-tests',
        'comment_type' => isset($c['type']) ? $c['type'] : 'comment',
        'user_id' => 0,
    ), true);
    if (is_wp_error($id)) {
        $made[] = array('error' => $id->get_error_code());
        continue;
    }
    $made[] = array('id' => (int) $id, 'status' => wp_get_comment_status($id));
}
echo json_encode($made);
