"""The service's routers, one module per feature; `app.create_app` mounts them."""
