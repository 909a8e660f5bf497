import pytest

@pytest.mark.parametrize("backend", ["sqlite"])
def test_pages_render(admin_client, make_user):
    make_user(credits=5)
    for url in ["/admin", "/admin/credits", "/admin/audit", "/admin/packs", "/admin/packs/new", "/admin/import"]:
        r = admin_client.get(url)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[:3000])
