"""The viewer, operator and admin groups, with the permissions they held when this was written
(frozen here: a later permission belongs to a later migration, whose models exist by then)."""

from django.db import migrations

VIEWER = (
    "calls.view_call", "calls.view_turn", "calls.view_callevent",
    "agents.view_persona", "agents.view_qaentry",
)  # fmt: skip
OPERATOR = (*VIEWER, "calls.place_call", "calls.control_call", "agents.chat_persona")
ADMIN = (
    *OPERATOR,
    "calls.download_recording", "calls.delete_call",
    "agents.add_persona", "agents.change_persona", "agents.delete_persona",
    "agents.add_qaentry", "agents.change_qaentry", "agents.delete_qaentry",
    "auth.view_user", "auth.add_user", "auth.change_user", "auth.delete_user", "auth.view_group",
)  # fmt: skip
ROLES = {"viewer": VIEWER, "operator": OPERATOR, "admin": ADMIN}


def create_roles(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after `migrate` ends; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, dotted in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for perm in dotted:
            app_label, codename = perm.split(".", 1)
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0002_call_permissions"),
        ("agents", "0003_persona_chat_permission"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, delete_roles)]
