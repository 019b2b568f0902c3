"""Drive the activation wizard through Django's test client, as a browser form would: each
page carries its activation's run id, which the next POST sends back."""

import re

STEP = "activate_license_view-current_step"
RUN = re.compile(rb'name="wizard_run" value="([0-9a-f]{16})"')


def _post(client, data):
    data["wizard_run"] = getattr(client, "wizard_run", "")
    response = client.post("/activate/", data)
    match = RUN.search(response.content)
    if match:
        client.wizard_run = match.group(1).decode()
    return response


def step1(client, number, installation_id):
    return _post(
        client,
        {
            STEP: "license",
            "license-license_number": number,
            "license-installation_id": installation_id,
        },
    )


def step2(client, mirrored_installation_id, back=None):
    """Step 2 sent, or with ``back`` (a step's name) its Back button pressed."""
    data = {STEP: "mirrored", "mirrored-mirrored_installation_id": mirrored_installation_id}
    if back:
        data["wizard_goto_step"] = back
    return _post(client, data)
