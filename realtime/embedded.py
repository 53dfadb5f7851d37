"""Embedded mode: run the feed inside the web server process."""


def start_with_server() -> None:
    return None
