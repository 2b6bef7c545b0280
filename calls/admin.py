"""Calls are read-only in the admin, with their turns and events inline."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User

from calls import services
from calls.models import Call, CallEvent, Turn


class ReadOnlyInline(admin.TabularInline):
    """Rows shown, never edited: every listed field is read-only (a non-editable one such as
    `created_at` may not appear in the inline's form at all)."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None) -> list[str]:
        return list(self.fields or ())


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = ["seq", "speaker", "text", "heard_text", "interrupted", "ended_at", "latency"]


class EventInline(ReadOnlyInline):
    model = CallEvent
    fields = ["created_at", "type", "payload"]


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "direction",
        "to_number",
        "persona",
        "status",
        "duration",
        "current_stage",
    ]
    list_filter = ["status", "direction", "persona"]
    search_fields = ["to_number", "from_number", "twilio_sid", "uuid"]
    date_hierarchy = "created_at"
    inlines = [TurnInline, EventInline]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def delete_model(self, request, obj: Call) -> None:
        services.calls_delete(Call.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset) -> None:
        services.calls_delete(queryset)


class RoleUserAdmin(UserAdmin):
    """Users, for the admin role: only a superuser grants superuser status or single permissions
    (an admin could otherwise make itself a superuser); roles are groups."""

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return (*fields, "is_superuser", "user_permissions")


admin.site.unregister(User)
admin.site.register(User, RoleUserAdmin)
