<?php
/**
 * Plugin Name: Moderation test hook log
 * Logs the hooks a status change fires and every mail, one JSON object a line, to
 * WP_CONTENT_DIR/hooks.jsonl; no mail is sent (`pre_wp_mail` answers true).
 */
function moderation_test_log($entry) {
    file_put_contents(
        WP_CONTENT_DIR . '/hooks.jsonl',
        json_encode($entry) . "\n",
        FILE_APPEND | LOCK_EX
    );
}

add_action('transition_comment_status', function ($new, $old, $comment) {
    moderation_test_log(array(
        'hook' => 'transition_comment_status',
        'comment' => (int) $comment->comment_ID,
        'new' => $new,
        'old' => $old,
    ));
}, 10, 3);

add_action('wp_set_comment_status', function ($comment_id, $status) {
    moderation_test_log(array(
        'hook' => 'wp_set_comment_status',
        'comment' => (int) $comment_id,
        'status' => $status,
    ));
}, 10, 2);

add_filter('pre_wp_mail', function ($return, $atts) {
    moderation_test_log(array(
        'hook' => 'wp_mail',
        'to' => $atts['to'],
        'subject' => $atts['subject'],
        'message' => $atts['message'],
    ));
    return true;
}, 10, 2);
