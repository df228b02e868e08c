<?php
// php install.php CONFIG_NAME HOST: install the site, make its users, a post and an
// Application Password; prints what the tests need as JSON.
$_SERVER['WORDPRESS_CONFIG'] = $argv[1];
$_SERVER['HTTP_HOST'] = $argv[2];
define('WP_INSTALLING', true);
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';

$admin_password = wp_generate_password(24, false);
$installed = wp_install('Moderation test', 'admin', 'admin@example.test', true, '', $admin_password);
// Every comment waits for a moderator; a known author is not waved through.
update_option('comment_moderation', '1');
update_option('comment_previously_approved', '0');
update_option('comments_notify', '1');
update_option('moderation_notify', '1');

function moderation_test_user($login, $role) {
    $id = wp_insert_user(array(
        'user_login' => $login,
        'user_pass' => wp_generate_password(24, false),
        'user_email' => $login . '@example.test',
        'role' => $role,
    ));
    list($password) = WP_Application_Passwords::create_new_application_password(
        $id, array('name' => 'moderation')
    );
    return array('id' => $id, 'login' => $login, 'app_password' => $password);
}

$editor = moderation_test_user('editor', 'editor');        // has moderate_comments
$author = moderation_test_user('writer', 'author');        // has not
$post_author = wp_insert_user(array(
    'user_login' => 'poster',
    'user_pass' => wp_generate_password(24, false),
    'user_email' => 'poster@example.test',
    'role' => 'author',
));
$post_id = wp_insert_post(array(
    'post_title' => 'A post',
    'post_content' => 'Its text.',
    'post_status' => 'publish',
    'post_author' => $post_author,
));
echo json_encode(array(
    'editor' => $editor,
    'author' => $author,
    'post' => $post_id,
    'post_author_email' => 'poster@example.test',
    'supported' => wp_is_application_passwords_available(),
));
