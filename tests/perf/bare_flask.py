"""The reference the endpoint benchmark measures first: a bare Flask app answering a small JSON
object, served by the same gunicorn settings. Its req/s on the same machine at the same moment is
what the provider's figures are compared with (this VM's speed varies by tens of percent)."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return {"status": "ok"}
