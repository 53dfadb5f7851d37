from django.urls import path

from dashboard import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("session/", views.session_status, name="session"),
    path("preferences/", views.preferences, name="preferences"),
    path("symbols/", views.symbol_search, name="symbol-search"),
    path("watchlist/add/", views.watchlist_add, name="watchlist-add"),
    path("watchlist/remove/", views.watchlist_remove, name="watchlist-remove"),
    path("watchlist/move/", views.watchlist_move, name="watchlist-move"),
    path("watchlists/new/", views.watchlist_new, name="watchlist-new"),
    path(
        "watchlists/<int:watchlist_id>/rename/",
        views.watchlist_rename_view,
        name="watchlist-rename",
    ),
    path(
        "watchlists/<int:watchlist_id>/delete/",
        views.watchlist_delete_view,
        name="watchlist-delete",
    ),
    path("demo/", views.guide_demo, name="demo"),
    path("favicon.ico", views.favicon, name="favicon"),
]
