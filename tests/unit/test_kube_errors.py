"""roadlab.kube.client: the one 404 rule, for the typed and the dynamic client's errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ForbiddenError, NotFoundError

from roadlab.kube.client import unless_not_found, went_through


def raising(error: Exception) -> Callable[[], str]:
    def call() -> str:
        raise error

    return call


@pytest.mark.parametrize(
    "error",
    [ApiException(status=404), NotFoundError(ApiException(status=404))],
    ids=["typed", "dynamic"],
)
def test_a_404_means_absent(error: Exception) -> None:
    assert unless_not_found(raising(error)) is None
    assert went_through(raising(error)) is False


@pytest.mark.parametrize(
    "error",
    [ApiException(status=500), ForbiddenError(ApiException(status=403)), ValueError("x")],
    ids=["typed-500", "dynamic-403", "no-api-error"],
)
def test_other_errors_propagate(error: Exception) -> None:
    with pytest.raises(type(error)):
        unless_not_found(raising(error))
    with pytest.raises(type(error)):
        went_through(raising(error))


def test_an_answer_passes_through() -> None:
    assert unless_not_found(lambda: "found") == "found"
    assert went_through(lambda: None) is True  # a call that returns nothing still went through
