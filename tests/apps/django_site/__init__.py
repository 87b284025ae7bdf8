"""A minimal Django project for the framework tests (tests/frameworks.rs).

No database and no installed apps; works with Django 3.2 (Debian 12's
python3-django) and 5.x. Serve it as `django_site.wsgi:application`.
"""
