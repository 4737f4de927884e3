"""Kopf must see a change of the check-request annotation, or on-demand checks wait for
the ticker: its diff leaves out every annotation under its own storage prefix."""

from __future__ import annotations

import kopf

from roadlab.api import naming
from roadlab.controller import startup


def lab(annotations: dict[str, str]) -> kopf.Body:
    return kopf.Body(
        {
            "apiVersion": "roadlab.dev/v1alpha1",
            "kind": "Lab",
            "metadata": {"name": "a", "annotations": annotations},
            "spec": {"lab": "smoke", "learner": "alice"},
        }
    )


def test_the_check_request_is_in_kopfs_diff() -> None:
    storage = startup.diffbase_storage()
    patch = kopf.Patch()
    storage.store(body=lab({}), patch=patch, essence=storage.build(body=lab({})))
    kopfs_own = dict(patch["metadata"]["annotations"])
    essence = storage.build(
        body=lab({**kopfs_own, naming.ANNOTATION_CHECK_REQUESTED: "t1", "note": "x"})
    )
    annotations = essence["metadata"]["annotations"]
    assert annotations[naming.ANNOTATION_CHECK_REQUESTED] == "t1"
    assert not any(key.startswith(f"{naming.KOPF_PREFIX}/") for key in annotations)


def test_the_old_prefix_would_hide_it() -> None:
    old = kopf.AnnotationsDiffBaseStorage(prefix=naming.GROUP, key="last-handled-configuration")
    marker = {f"{naming.GROUP}/kopf-managed": "yes"}
    essence = old.build(body=lab({**marker, naming.ANNOTATION_CHECK_REQUESTED: "t1"}))
    assert naming.ANNOTATION_CHECK_REQUESTED not in essence.get("metadata", {}).get(
        "annotations", {}
    )
    assert set(naming.LEGACY_KOPF_ANNOTATIONS) >= set(marker)
