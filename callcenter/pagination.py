"""API pagination: `page` and `page_size` (bounded), so clients can export in few requests."""

from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 500
