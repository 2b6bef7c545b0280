"""The API without `POST /api/personas/{slug}/chat/`: a server from before the playground endpoint."""

from django.urls import include, path

from agents.api.views import PersonaViewSet

urlpatterns = [
    path("api/personas/", PersonaViewSet.as_view({"get": "list"})),
    path("api/personas/<slug:slug>/", PersonaViewSet.as_view({"get": "retrieve"})),
    path("api/", include("calls.api.urls")),
]
