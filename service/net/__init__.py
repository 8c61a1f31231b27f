"""Every outbound call alvo makes, with its deadlines and its confinement.

``fetch`` (user-given URLs: total deadline, size cap, redirects checked, disk
cache), ``confinement`` (where fetches may go), ``simbad`` (identification of a
batch in SIMBAD), ``uws_client`` (submit and follow a UWS job, for the CLI).
"""
