"""moto_server, with each DynamoDB operation isolated from the others.

moto serves requests on threads, and its TransactWriteItems is not isolated: it copies the
tables it writes, applies the items one by one and, if one fails, puts the copies back,
undoing whatever another request wrote meanwhile (two checkouts could then both take the
last unit). DynamoDB runs each operation atomically and transactions serializably: one lock
around moto's DynamoDB operations gives that here. Other services stay concurrent (SQS long
polls must not block the rest).
"""

import functools
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

_LOCK = threading.RLock()

OPERATIONS = [
    "put_item", "update_item", "delete_item", "get_item", "query", "scan",
    "batch_write_item", "batch_get_item", "transact_write_items", "transact_get_items",
]


def _isolated(operation):
    @functools.wraps(operation)
    def run(*args, **kwargs):
        with _LOCK:
            return operation(*args, **kwargs)

    return run


for name in OPERATIONS:
    setattr(DynamoDBBackend, name, _isolated(getattr(DynamoDBBackend, name)))

if __name__ == "__main__":
    main()
