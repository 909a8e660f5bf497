"""One OS process of the multi-process spend race (test_concurrency.py).

Usage: python spend_worker.py DATABASE_URL USER_ID REFERENCE
Builds its own app against DATABASE_URL, prints "ready", waits for a line on stdin,
spends 3 credits and prints "spent <balance_after>" or "insufficient <available>".
"""
import sys


def main(url: str, user_id: int, reference: str) -> None:
    from storefront import create_app
    from storefront.db import write_transaction
    from storefront.extensions import db
    from storefront.ledger import service as ledger

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "worker", "TESTING": True})
    with app.app_context():
        db.session.execute(db.text("SELECT 1"))  # connect before the start signal
        db.session.rollback()
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            with write_transaction():
                entry = ledger.spend(user_id, 3, reference=reference, actor=ledger.Actor.system())
                after = entry.balance_after
            print(f"spent {after}", flush=True)  # only once committed
        except ledger.InsufficientCredits as exc:
            print(f"insufficient {exc.available}", flush=True)
        db.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
