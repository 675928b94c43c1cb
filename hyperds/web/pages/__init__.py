"""One module per page; each exposes `routes` (Starlette Routes), collected by hyperds.web.app."""
