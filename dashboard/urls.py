from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("watchlist/add/", views.watchlist_add, name="watchlist-add"),
    path("watchlist/remove/", views.watchlist_remove, name="watchlist-remove"),
    path("demo/", views.guide_demo, name="demo"),
]
