"""Many jobs as one graph on Ray: each motion learned once, each sketch's appearance once, every pair's stage 3 as soon as both exist."""
