"""The header that marks a Dask cluster refused for quota, shared with the panel."""

# Set (to "quota") on the 422 that refuses a cluster over the user's quota. 422, not
# 403: dask_gateway's client raises ValueError(sentence) for a 422, so a notebook shows
# accounting's reason, while for a 403 it keeps only "Forbidden". The panel's server
# (jhub_af.lab.dask) reads the header to tell a quota refusal from bad options.
QUOTA_REFUSAL_HEADER = "X-JHub-AF-Refused"
