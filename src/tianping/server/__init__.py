"""The server: the app that assembles every domain's router, the dashboard and the API's own pages
(an edge: it imports every domain; nothing imports it but the CLI's ``serve``)."""
