"""The same routes as flask_site.py, without trailing slashes."""

from django.urls import path

from . import views

urlpatterns = [
    path("stream", views.stream),
    path("empty", views.empty),
    path("form", views.form),
    path("where", views.where),
    path("upload", views.upload),
    path("pause", views.pause),
]
