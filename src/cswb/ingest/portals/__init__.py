"""Open-data portal adapters: a catalogue entry's dataset into a resumable JSON-lines download.

:func:`adapter_for` picks the adapter for a :class:`~cswb.ingest.registry.CatalogueEntry`;
:func:`~cswb.ingest.portals.base.download` runs it. See ``docs/portals.md``.
"""

from __future__ import annotations

from datetime import date

from cswb.errors import PortalError
from cswb.ingest.portals.arcgis import ArcGISAdapter
from cswb.ingest.portals.base import (
    Checkpoint,
    DownloadProgress,
    DownloadResult,
    PortalAdapter,
    PortalClient,
    RetryPolicy,
    checkpoint_path,
    download,
    make_client,
)
from cswb.ingest.portals.socrata import SocrataAdapter
from cswb.ingest.registry import CatalogueEntry, PortalType, Support

__all__ = [
    "ArcGISAdapter", "Checkpoint", "DownloadProgress", "DownloadResult", "PortalAdapter",
    "PortalClient", "RetryPolicy", "SocrataAdapter", "adapter_for", "checkpoint_path",
    "download", "make_client",
]


def adapter_for(entry: CatalogueEntry, http: PortalClient, *, since: date | None = None,
                until: date | None = None) -> PortalAdapter:
    """The adapter that fetches ``entry``'s dataset (optionally only ``since``..``until``)."""
    if entry.portal is PortalType.SOCRATA:
        if not entry.dataset_id:
            raise PortalError(f"catalogue entry {entry.source_table_id} has no dataset id")
        return SocrataAdapter(http, entry.url, entry.dataset_id, date_field=entry.date_field,
                              since=since, until=until, filters=entry.query)
    if entry.portal is PortalType.ARCGIS:
        return ArcGISAdapter(http, entry.url, date_field=entry.date_field, since=since,
                             until=until, filters=entry.query)
    hint = ("an adapter is planned" if entry.support is Support.NOT_YET
            else "no adapter is planned")
    raise PortalError(
        f"{entry.source_name} {entry.table_type.lower()} ({entry.source_table_id}) is published "
        f"as {entry.portal_label or 'an unknown type'}, which cswb cannot fetch "
        f"({entry.support.value}; {hint}). Download it by hand from {entry.url or entry.source_url}"
        " and ingest the file with `cswb ingest FILE --mapping MAPPING.yaml`."
    )
