from django.urls import path

from dashboard import alert_views, views

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
    path("alerts/", alert_views.alert_panel, name="alerts"),
    path("alerts/new/", alert_views.alert_new, name="alert-new"),
    path(
        "alerts/<int:alert_id>/active/", alert_views.alert_active, name="alert-active"
    ),
    path(
        "alerts/<int:alert_id>/delete/", alert_views.alert_delete, name="alert-delete"
    ),
    path("demo/", views.guide_demo, name="demo"),
    path("favicon.ico", views.favicon, name="favicon"),
]
