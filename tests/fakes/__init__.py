"""Local fake servers for the external APIs the project calls (see `server.serve`)."""
