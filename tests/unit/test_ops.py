from idp.extensions import store


def test_healthz_answers_json(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["X-Request-Id"]


def test_readyz_reports_database_and_store(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "store": "ok"}


def test_readyz_503_when_store_down(app, client, monkeypatch):
    with app.app_context():
        def down():
            raise ConnectionError("store is down")
        monkeypatch.setattr(store._get_current_object(), "ping", down)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["store"] == "unreachable"


def test_every_response_carries_a_request_id_and_a_plain_incoming_one_is_kept(client):
    assert client.get("/no-such-page").headers["X-Request-Id"]  # error pages too
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"] == "abc-123"
    for unsafe in ("a b", "x" * 65, "id\"}, {\"evil\": 1"):
        replaced = client.get("/healthz", headers={"X-Request-Id": unsafe}).headers["X-Request-Id"]
        assert replaced != unsafe and len(replaced) == 32 and replaced.isalnum()


def test_the_app_sees_the_request_id_the_response_carries(app, client):
    from idp.extensions import request_id

    with app.test_request_context("/", headers={"X-Request-Id": "ignored-here"}):
        assert request_id() is None  # only set by the WSGI middleware, which a bare context skips
    seen = {}

    @app.get("/_probe_request_id")
    def probe():
        seen["id"] = request_id()
        return "ok"

    response = client.get("/_probe_request_id", headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42" == seen["id"]
