def test_home_shows_widget_to_anonymous_visitor(client):
    page = client.get("/").get_data(as_text=True)
    assert "My training credits" in page
    assert "Log in to see your credits" in page


def test_learner_sees_balance(client, make_user, login, verify_ledger):
    user = make_user(credits=20)
    login(client, user)
    page = client.get("/").get_data(as_text=True)
    assert 'data-testid="balance">20<' in page
    verify_ledger()
