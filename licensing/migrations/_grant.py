"""For migrations: give the support group a permission of this app (a module whose name
starts with "_" is not taken for a migration)."""


def grant_to_support(codename: str):
    def grant(apps, schema_editor):
        from django.contrib.auth.management import create_permissions

        # Permissions are normally created after all migrations; the group needs this one now.
        app_config = apps.get_app_config("licensing")
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
        group = apps.get_model("auth", "Group").objects.filter(name="support").first()
        if group is not None:
            group.permissions.add(
                apps.get_model("auth", "Permission").objects.get(
                    content_type__app_label="licensing", codename=codename
                )
            )

    return grant
