"""The Admin API's entity paths, as Kong names them."""

from __future__ import annotations

from fastapi import FastAPI

from control_plane.admin import crud
from control_plane.admin.context import AdminContext
from control_plane.admin.crud import Parent
from control_plane.admin.foreign import add_foreign_routes
from control_plane.admin.kinds import CONSUMERS, CREDENTIALS, PLUGINS, ROUTES, SERVICES, Kind
from control_plane.admin.openapi import operation

ENTITY_KINDS = [SERVICES, ROUTES, CONSUMERS, PLUGINS, CREDENTIALS]


def _collection(
    app: FastAPI,
    ctx: AdminContext,
    path: str,
    kind: Kind,
    parent: Parent | None = None,
    *,
    create: bool = True,
) -> None:
    app.add_api_route(
        path,
        crud.list_endpoint(ctx, kind, parent),
        methods=["GET"],
        openapi_extra=operation(path, None, listing=True, summary=f"List {kind.entity_name}"),
    )
    if create:
        app.add_api_route(
            path,
            crud.create_endpoint(ctx, kind, parent),
            methods=["POST"],
            status_code=201,
            openapi_extra=operation(path, kind, summary=f"Create in {kind.entity_name}"),
        )


def _item(
    app: FastAPI,
    ctx: AdminContext,
    path: str,
    kind: Kind,
    parent: Parent | None = None,
) -> None:
    name = kind.entity_name
    app.add_api_route(
        path,
        crud.get_endpoint(ctx, kind, parent),
        methods=["GET"],
        openapi_extra=operation(path, None, summary=f"Read one of {name}"),
    )
    app.add_api_route(
        path,
        crud.patch_endpoint(ctx, kind, parent),
        methods=["PATCH"],
        openapi_extra=operation(path, kind, summary=f"Update one of {name}"),
    )
    app.add_api_route(
        path,
        crud.put_endpoint(ctx, kind, parent),
        methods=["PUT"],
        openapi_extra=operation(path, kind, summary=f"Create or replace one of {name}"),
    )
    app.add_api_route(
        path,
        crud.delete_endpoint(ctx, kind, parent),
        methods=["DELETE"],
        status_code=204,
        openapi_extra=operation(path, None, summary=f"Delete one of {name}"),
    )


def add_entity_routes(app: FastAPI, ctx: AdminContext) -> None:
    """Mount services, routes, consumers, key-auth credentials and plugins: flat, nested under
    their parents, and the foreign-entity paths (`/routes/{route}/service`)."""
    service = Parent(SERVICES, "service", "service")
    route = Parent(ROUTES, "route", "route")
    consumer = Parent(CONSUMERS, "consumer", "consumer")

    _collection(app, ctx, "/services", SERVICES)
    _item(app, ctx, "/services/{id}", SERVICES)
    _collection(app, ctx, "/services/{service}/routes", ROUTES, service)
    _item(app, ctx, "/services/{service}/routes/{id}", ROUTES, service)
    _collection(app, ctx, "/services/{service}/plugins", PLUGINS, service)
    _item(app, ctx, "/services/{service}/plugins/{id}", PLUGINS, service)

    _collection(app, ctx, "/routes", ROUTES)
    _item(app, ctx, "/routes/{id}", ROUTES)
    _collection(app, ctx, "/routes/{route}/plugins", PLUGINS, route)
    _item(app, ctx, "/routes/{route}/plugins/{id}", PLUGINS, route)
    add_foreign_routes(app, ctx, "/routes", ROUTES, "service", SERVICES)

    _collection(app, ctx, "/consumers", CONSUMERS)
    _item(app, ctx, "/consumers/{id}", CONSUMERS)
    _collection(app, ctx, "/consumers/{consumer}/key-auth", CREDENTIALS, consumer)
    _item(app, ctx, "/consumers/{consumer}/key-auth/{id}", CREDENTIALS, consumer)
    _collection(app, ctx, "/consumers/{consumer}/plugins", PLUGINS, consumer)
    _item(app, ctx, "/consumers/{consumer}/plugins/{id}", PLUGINS, consumer)

    # A credential needs its consumer: it is created under /consumers/{c}/key-auth (or with
    # PUT /key-auths/{id} and a `consumer` in the body).
    _collection(app, ctx, "/key-auths", CREDENTIALS, create=False)
    _item(app, ctx, "/key-auths/{id}", CREDENTIALS)
    add_foreign_routes(app, ctx, "/key-auths", CREDENTIALS, "consumer", CONSUMERS)

    _collection(app, ctx, "/plugins", PLUGINS)
    _item(app, ctx, "/plugins/{id}", PLUGINS)
    for field, target in (("service", SERVICES), ("route", ROUTES), ("consumer", CONSUMERS)):
        add_foreign_routes(app, ctx, "/plugins", PLUGINS, field, target)
