"""An application factory: `factory:create_app("name")`."""


def create_app(name="default"):
    body = ("Hello from %s\n" % name).encode()

    def app(environ, start_response):
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
