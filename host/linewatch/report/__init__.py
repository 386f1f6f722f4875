"""The commission's daily violation report and its exports, one module per job:

    day.py        which day (UTC) a report covers, from `--day YYYY-MM-DD`
    places.py     where an incident was, told as monitors tell it: bearing and distance band
                  from the nearest named reference point ([report] places in the config)
    categories.py the categories monitors count (explosions: impact / outgoing / undetermined,
                  bursts and shots, drone overflights and crossings ...)
    gather.py     the day's data from the store: incidents, nodes, availability, evidence
    availability.py  each node's availability over the day, from its state changes and frames
    figure.py     the map figure (matplotlib, a PNG data URI)
    html.py       the self-contained HTML page (inline CSS and images: no external reference)
    pdf.py        HTML -> PDF where a converter is installed
    exports.py    CSV and GeoJSON (RFC 7946) of incidents, tracks and nodes, for QGIS

Data flows one way: store -> gather -> (html | exports). Nothing here writes to the store.
"""

# What `linewatch export` writes, named here so the command line knows them without importing
# the modules (every `linewatch` command builds the whole parser at start).
WHAT = ("incidents", "tracks", "nodes")
FORMATS = ("csv", "geojson")
