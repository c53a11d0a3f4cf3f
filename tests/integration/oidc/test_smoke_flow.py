from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import authorize, code_flow, make_account, make_client, query


def test_code_flow_issues_verifiable_tokens(app, client):
    with app.app_context():
        make_account()
        rp = make_client()
    tokens = code_flow(client, rp, scope="openid profile email access")
    jwks = KeySet.import_key_set(client.get("/jwks.json").get_json())
    id_token = jwt.decode(tokens["id_token"], jwks)
    assert id_token.header["alg"] == "RS256"
    assert id_token.claims["aud"] == rp.client_id
    assert id_token.claims["nonce"] == "n-0S6_WzA2Mj"
    assert id_token.claims["role"] == "eo" and id_token.claims["centre"] == "12345"
    access = jwt.decode(tokens["access_token"], jwks)
    assert access.header["typ"] == "at+jwt" and access.header["alg"] == "ES256"
    info = client.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200, info.get_data(as_text=True)
    assert info.get_json()["sub"] == id_token.claims["sub"]
    assert tokens["refresh_token"]


def test_authorize_response_carries_iss_and_state(app, client):
    with app.app_context():
        make_account()
        rp = make_client()
    response, _ = authorize(client, rp)
    params = query(response.location)
    assert params["iss"] == "http://localhost" and params["state"] == "st"
