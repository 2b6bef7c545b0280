"""URL routes: admin, the API (+ schema and docs), Twilio webhooks."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from callcenter.tokens import OwnTokenView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/token/", OwnTokenView.as_view(), name="api-token"),
    path("api/", include("agents.api.urls")),
    path("api/", include("calls.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Signed-in users only (SERVE_PERMISSIONS); the docs page sends a browser to the admin login.
    path(
        "api/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="schema"), login_url="admin:login"),
        name="api-docs",
    ),
    path("twilio/", include("calls.telephony.urls")),
]
