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
