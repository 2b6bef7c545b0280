"""Call routes."""

from rest_framework.routers import DefaultRouter

from calls.api.views import CallViewSet

router = DefaultRouter()
router.register("calls", CallViewSet, basename="call")
urlpatterns = router.urls
