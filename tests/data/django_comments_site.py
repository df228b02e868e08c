"""A minimal Django site with django-contrib-comments on SQLite, for the live tests.

Run by the Python of a virtualenv that has Django and django-contrib-comments (never the
project's): ``python django_comments_site.py DB COMMAND [ARGS]`` prints one JSON object.

- ``setup``: migrate, create the moderator user and the site's one post (a ``Site``);
- ``post TEXT...``: post comments through django-contrib-comments' own form (with its security
  hash), held for moderation (``is_public=False``) as a ``CommentModerator`` would hold them;
- ``state``: every comment and flag, read through Django's ORM, and the texts the site shows
  (the ``get_comment_list`` template tag, as a page would render them).
"""

from __future__ import annotations

import json
import sys

import django
from django.conf import settings


def configure(db: str) -> None:
    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SITE_ID=1,
        SECRET_KEY="a key for a throwaway test site, nothing else",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sites",
            "django_comments",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
    )
    django.setup()


def setup() -> dict[str, object]:
    from django.contrib.auth.models import User
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    moderator = User.objects.create_user("moderator")
    return {"moderator": moderator.pk}


def post(texts: list[str]) -> dict[str, object]:
    import django_comments
    from django.contrib.sites.models import Site

    site = Site.objects.get_current()
    form_class = django_comments.get_form()
    ids = []
    for text in texts:
        data = {
            **form_class(site).generate_security_data(),
            "name": "reader",
            "email": "reader@example.org",
            "url": "",
            "comment": text,
        }
        form = form_class(site, data=data)
        if not form.is_valid():
            raise SystemExit(f"the comment form refused {text!r}: {form.errors.as_json()}")
        comment = form.get_comment_object(site_id=site.pk)
        comment.is_public = False
        comment.save()
        ids.append(comment.pk)
    return {"ids": ids}


def state() -> dict[str, object]:
    import django_comments
    from django.contrib.sites.models import Site
    from django.template import Context, Template
    from django_comments.models import CommentFlag

    comments = [
        {"id": c.pk, "text": c.comment, "is_public": c.is_public, "is_removed": c.is_removed}
        for c in django_comments.get_model().objects.order_by("pk")
    ]
    flags = [
        {
            "comment": f.comment_id,
            "user": f.user.get_username(),
            "flag": f.flag,
            "aware": f.flag_date is not None and f.flag_date.tzinfo is not None,
        }
        for f in CommentFlag.objects.select_related("user").order_by("comment_id", "flag")
    ]
    page = Template(
        "{% load comments %}{% get_comment_list for site as shown %}"
        "{% for c in shown %}{{ c.comment }}\n{% endfor %}"
    ).render(Context({"site": Site.objects.get_current()}))
    return {"comments": comments, "flags": flags, "shown": page.splitlines()}


def main() -> None:
    db, command, *args = sys.argv[1:]
    configure(db)
    actions = {"setup": lambda: setup(), "post": lambda: post(args), "state": lambda: state()}
    print(json.dumps(actions[command]()))


if __name__ == "__main__":
    main()
