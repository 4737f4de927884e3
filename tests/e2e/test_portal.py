"""The learner portal, as a learner meets it: in a real browser (headless Chromium from
Debian, driven by Selenium), on the real cluster, the portal deployed by the chart and
reached through `kubectl port-forward`, the terminal a shell in the lab's workspace pod.

Open the link, see the guide, type `kubectl get pods` into the terminal and read its
output, solve the smoke lab from the terminal, click Check, see 2/2 and Completed. Then
what a curious learner would try: another lab's routes, a POST without the CSRF token, a
revoked link. Screenshots go to $ROADLAB_E2E_ARTIFACTS (default: e2e-artifacts/).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from kubernetes import client
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from roadlab.api import naming

from .operator_fixtures import (
    OPERATOR_NAMESPACE,
    REPO,
    Labs,
    OperatorProcess,
    combined_catalog,
    free_port,
)
from .test_operator import unique, wait_ready
from .waiting import wait_until

TOOLBOX_IMAGE = "localhost/roadlab/toolbox:0.1.0"
ARTIFACTS = Path(os.environ.get("ROADLAB_E2E_ARTIFACTS", REPO / "e2e-artifacts"))
CACHE_BIN = Path(os.environ.get("ROADLAB_CACHE", Path.home() / ".cache" / "roadlab")) / "bin"


def tools_env(kubeconfig: str) -> dict[str, str]:
    return {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PATH": f"{CACHE_BIN}{os.pathsep}{os.environ['PATH']}",
    }


@pytest.fixture(scope="module")
def operator(
    kubeconfig: str, crd: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """This module's operator also gives every Lab its workspace (the terminal's shell)."""
    process = OperatorProcess(
        kubeconfig,
        tmp_path_factory.mktemp("operator"),
        ROADLAB_TICK_SECONDS="3",
        ROADLAB_CATALOG=str(combined_catalog(tmp_path_factory.mktemp("catalog"))),
        ROADLAB_WORKSPACE_IMAGE=TOOLBOX_IMAGE,
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def portal(kubeconfig: str, crd: None) -> Iterator[str]:
    """The chart's portal, applied as Helm renders it; its URL through a port-forward."""
    env = tools_env(kubeconfig)
    rendered = subprocess.run(
        ["helm", "template", "roadlab", str(REPO / "charts" / "roadlab"), "--namespace",
         OPERATOR_NAMESPACE, "--show-only", "templates/portal.yaml"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout  # fmt: skip
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", "-"],
        input=rendered, check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    subprocess.run(
        ["kubectl", "rollout", "restart", "-n", OPERATOR_NAMESPACE, "deployment/roadlab-portal"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )  # fmt: skip  (a new image under the same tag)
    subprocess.run(
        ["kubectl", "rollout", "status", "-n", OPERATOR_NAMESPACE, "deployment/roadlab-portal",
         "--timeout=180s"],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    port = free_port()
    forward = subprocess.Popen(
        ["kubectl", "port-forward", "-n", OPERATOR_NAMESPACE, "svc/roadlab-portal",
         f"{port}:8080"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(f"{base}/healthz", timeout=2).ok, "the portal")
        yield base
    finally:
        forward.terminate()
        forward.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1440,900"):
        options.add_argument(flag)
    options.binary_location = "/usr/bin/chromium"
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def portal_link(lab: str, base: str) -> str:
    done = subprocess.run(
        ["python3", "-m", "roadlab.cli", "url", lab, "--portal-url", base],
        check=True, capture_output=True, text=True, cwd=REPO,
    )  # fmt: skip
    return done.stdout.strip()


def workspace_running(api: client.ApiClient, lab: str) -> bool:
    deployment = client.AppsV1Api(api).read_namespaced_deployment("workspace", f"lab-{lab}")
    return bool(deployment.status.available_replicas)


def type_in_terminal(driver: WebDriver, text: str) -> None:
    area = driver.find_element(By.CSS_SELECTOR, "#terminal .xterm-helper-textarea")
    area.send_keys(text)


def terminal_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "terminal").text)


@pytest.fixture(scope="module")
def two_labs(labs_module: Labs, api: client.ApiClient) -> tuple[str, str]:
    mine, theirs = unique("portal-a"), unique("portal-b")
    for name in (mine, theirs):
        labs_module.create(name, learner="alice")
    for name in (mine, theirs):
        wait_ready(labs_module, name, timeout=180)
    wait_until(lambda: workspace_running(api, mine), "the workspace pod", timeout=240)
    return mine, theirs


def test_a_learner_solves_the_lab_in_the_browser(
    portal: str, browser: WebDriver, two_labs: tuple[str, str], labs_module: Labs
) -> None:
    lab, _ = two_labs
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    browser.get(portal_link(lab, portal))
    wait = WebDriverWait(browser, 60)
    wait.until(lambda d: d.find_element(By.ID, "terminal-state").text == "connected")
    print(f"link -> terminal connected: {time.monotonic() - started:.2f} s")
    assert browser.current_url == f"{portal}/labs/{lab}"  # the token left the URL
    guide = browser.find_element(By.ID, "guide").text
    assert f"lab-{lab}" in guide  # the assignment's values filled in
    tasks = browser.find_element(By.ID, "tasks").text.lower()  # the page shows states in capitals
    assert "failed" in tasks and "spec.replicas is 1, expected 2" in tasks

    try:
        wait.until(lambda d: "learner@workspace" in terminal_text(d))  # the shell's prompt
    finally:
        browser.save_screenshot(str(ARTIFACTS / "portal-first-view.png"))
    type_in_terminal(browser, "kubectl get pods\n")
    wait.until(lambda d: "web-" in terminal_text(d) and "workspace-" in terminal_text(d))
    browser.save_screenshot(str(ARTIFACTS / "portal-guide-tasks-terminal.png"))

    type_in_terminal(browser, "kubectl create configmap answer --from-literal=answer=42\n")
    try:
        wait.until(lambda d: "configmap/answer created" in terminal_text(d))
        type_in_terminal(browser, "kubectl scale deployment web --replicas=2\n")
        wait.until(lambda d: "deployment.apps/web scaled" in terminal_text(d))
    finally:
        browser.save_screenshot(str(ARTIFACTS / "portal-solving.png"))
    browser.find_element(By.ID, "check").click()
    wait.until(lambda d: "2/2" in d.find_element(By.ID, "progress-text").text)
    wait.until(lambda d: d.find_element(By.ID, "notice").is_displayed())
    assert "Every task passes" in browser.find_element(By.ID, "notice").text
    completed = labs_module.condition(lab, "Completed")
    assert completed and completed["status"] == "True"
    browser.save_screenshot(str(ARTIFACTS / "portal-completed.png"))


def session_of(browser: WebDriver, portal: str) -> tuple[requests.Session, str]:
    """The browser's signed-in session, for requests the page would never make."""
    session = requests.Session()
    for cookie in browser.get_cookies():
        session.cookies.set(cookie["name"], cookie["value"])
    csrf = browser.find_element(By.TAG_NAME, "body").get_attribute("data-csrf") or ""
    return session, csrf


def test_a_session_reaches_its_own_lab_only(
    portal: str, browser: WebDriver, two_labs: tuple[str, str]
) -> None:
    mine, theirs = two_labs
    browser.get(portal_link(mine, portal))
    WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith(f"/labs/{mine}"))
    session, csrf = session_of(browser, portal)
    headers = {"X-CSRF-Token": csrf, "Origin": portal}
    assert session.get(f"{portal}/labs/{mine}/status", timeout=10).status_code == 200
    for method, path, body in [
        ("GET", "", None), ("GET", "/status", None), ("GET", "/events", None),
        ("POST", "/check", None), ("POST", "/extend", {"duration": "30m"}),
        ("POST", "/hint/scale-web", None),
    ]:  # fmt: skip
        for lab in (theirs, "no-such-lab"):
            answer = session.request(
                method, f"{portal}/labs/{lab}{path}", json=body, headers=headers, timeout=10,
                stream=True,
            )  # fmt: skip
            assert answer.status_code == 404, (method, lab, path, answer.status_code)
            answer.close()
    # A POST without the session's CSRF token does nothing.
    refused = session.post(f"{portal}/labs/{mine}/check", headers={"Origin": portal}, timeout=10)
    assert refused.status_code == 403
    # Another lab's link with this lab's token: refused.
    token = portal_link(mine, portal).split("token=", 1)[1]
    other = requests.get(
        f"{portal}/enter/{theirs}?token={token}", timeout=10, allow_redirects=False
    )
    assert other.status_code == 403


def test_a_revoked_link_is_refused_and_a_new_one_works(
    portal: str, two_labs: tuple[str, str], labs_module: Labs, api: client.ApiClient
) -> None:
    lab, _ = two_labs
    old = portal_link(lab, portal)
    digest = labs_module.get(lab)["status"]["portalTokenSHA256"]
    client.CoreV1Api(api).delete_namespaced_secret(f"roadlab-portal-{lab}", OPERATOR_NAMESPACE)
    wait_until(
        lambda: labs_module.get(lab)["status"].get("portalTokenSHA256") not in (None, digest),
        "a new access token", timeout=60,
    )  # fmt: skip

    def refused() -> bool:
        answer = requests.get(old, timeout=10, allow_redirects=False)
        return answer.status_code == 403

    # Spaced: sign-in attempts are rate limited (10 a minute per lab); the portal reads the
    # token's digest again within 10 s.
    wait_until(refused, "the revoked link to be refused", timeout=30, interval=5)
    new = requests.get(portal_link(lab, portal), timeout=10, allow_redirects=False)
    assert new.status_code == 303, new.status_code
    assert new.headers["location"].endswith(f"/labs/{lab}")
    cookie = new.headers.get("set-cookie", "")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


def test_an_enrolled_learner_sees_the_roadmap_and_starts_the_next_milestone(
    portal: str, browser: WebDriver, api: client.ApiClient, operator: OperatorProcess
) -> None:
    custom = client.CustomObjectsApi(api)
    roadmap, enrollment = unique("pmap"), unique("penr")
    hostile = '<img src=x onerror="document.title=1">'
    objects = [
        ("roadmaps", "Roadmap", roadmap, {
            "title": "Portal path",
            "milestones": [
                {"id": "first", "title": "Scale and answer", "lab": "smoke"},
                {"id": "second", "title": hostile, "lab": "smoke", "requires": ["first"]},
            ],
        }),
        ("enrollments", "Enrollment", enrollment, {"roadmap": roadmap, "learner": "alice"}),
    ]  # fmt: skip
    for plural, kind, name, spec in objects:
        custom.create_cluster_custom_object("roadlab.dev", "v1alpha1", plural, {
            "apiVersion": "roadlab.dev/v1alpha1", "kind": kind, "metadata": {"name": name},
            "spec": spec,
        })  # fmt: skip
    lab = naming.milestone_lab_name(enrollment, "first")
    try:
        # The instructor starts the first milestone (the learner would run `kubectl lab next`).
        wait_until(
            lambda: custom.patch_cluster_custom_object(
                "roadlab.dev", "v1alpha1", "enrollments", enrollment,
                {"metadata": {"annotations": {naming.ANNOTATION_START_REQUESTED: "portal-1"}}},
            ) and _lab_exists(custom, lab),
            "the first milestone's Lab", timeout=60,
        )  # fmt: skip
        wait_until(lambda: workspace_running(api, lab), "its workspace pod", timeout=240)
        browser.get(portal_link(lab, portal))
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: "Scale and answer" in d.find_element(By.ID, "roadmap").text)
        panel = browser.find_element(By.ID, "roadmap")
        assert "Portal path" in panel.text and "locked" in panel.text.lower()
        assert hostile in panel.text  # shown as text, never as an element
        assert panel.find_elements(By.TAG_NAME, "img") == []
        assert browser.find_element(By.ID, "start-next").is_displayed() is False

        wait.until(lambda d: d.find_element(By.ID, "terminal-state").text == "connected")
        wait.until(lambda d: "learner@workspace" in terminal_text(d))
        type_in_terminal(browser, "kubectl create configmap answer --from-literal=answer=42\n")
        type_in_terminal(browser, "kubectl scale deployment web --replicas=2\n")
        wait.until(lambda d: "deployment.apps/web scaled" in terminal_text(d))
        browser.find_element(By.ID, "check").click()
        wait.until(lambda d: d.find_element(By.ID, "start-next").is_displayed())
        assert "✓" in browser.find_element(By.ID, "roadmap-milestones").text
        browser.find_element(By.ID, "start-next").click()
        wait.until(lambda d: "starting" in d.find_element(By.ID, "start-state").text)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "portal-roadmap.png"))
        found = custom.get_cluster_custom_object(
            "roadlab.dev", "v1alpha1", "enrollments", enrollment
        )
        status = cast(dict[str, Any], found)["status"]
        states = {m["id"]: m["state"] for m in status["milestones"]}
        assert states == {"first": "Completed", "second": "Running"}, states
        assert browser.title != "1"  # the hostile title's handler never ran
    finally:
        for plural, _, name, _ in reversed(objects):
            custom.delete_cluster_custom_object("roadlab.dev", "v1alpha1", plural, name)


def _lab_exists(custom: client.CustomObjectsApi, name: str) -> bool:
    try:
        custom.get_cluster_custom_object("roadlab.dev", "v1alpha1", "labs", name)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True
