"""The web renderer's network guard: which addresses may be reached (policy), HTTP heads (http), and the forward proxy the browser goes through (proxy)."""
