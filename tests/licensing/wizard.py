"""Drive the activation wizard through Django's test client, as a browser form would."""

STEP = "activate_license_view-current_step"


def step1(client, number, installation_id):
    return client.post(
        "/activate/",
        {
            STEP: "license",
            "license-license_number": number,
            "license-installation_id": installation_id,
        },
    )


def step2(client, mirrored_installation_id):
    return client.post(
        "/activate/",
        {STEP: "mirrored", "mirrored-mirrored_installation_id": mirrored_installation_id},
    )
