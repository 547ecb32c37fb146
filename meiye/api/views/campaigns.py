"""Segments (会员分群) and campaigns (营销活动), HQ only (`campaigns.manage`): segments with a live count,
campaigns with scheduling, sending now (`Idempotency-Key` required; re-sending changes nothing) and the report.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from meiye.api import serializers_campaigns as s
from meiye.api.idempotency import idempotency_exempt, idempotent
from meiye.api.schema import problems
from meiye.api.views.base import ActorMixin
from meiye.campaigns.models import Campaign, Segment
from meiye.campaigns.segments import criteria_clean, segment_count
from meiye.campaigns.selectors import campaign_get, campaign_report, campaigns_list, segment_get, segments_list
from meiye.campaigns.services import (
    campaign_input,
    campaign_save,
    campaign_schedule,
    campaign_send,
    segment_delete,
    segment_save,
)
from meiye.org.roles import Perm

TAG = "campaigns"


class SegmentViewSet(ActorMixin, viewsets.GenericViewSet):
    """Saved member filters."""

    queryset = Segment.objects.none()  # only for the schema; reads go through campaigns.selectors
    lookup_value_regex = r"\d+"

    @extend_schema(tags=[TAG], summary="Segments", responses={200: s.SegmentSerializer(many=True), **problems(403)})
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(segments_list(self.actor))
        return self.get_paginated_response(s.SegmentSerializer(page, many=True).data)

    @extend_schema(tags=[TAG], summary="A segment", responses={200: s.SegmentSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.SegmentSerializer(segment_get(self.actor, pk)).data)

    @extend_schema(
        tags=[TAG],
        summary="Create a segment",
        request=s.SegmentWriteSerializer,
        responses={201: s.SegmentSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.SegmentWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        segment = segment_save(actor=self.actor, **form.validated_data)
        return Response(s.SegmentSerializer(segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Change a segment",
        request=s.SegmentPatchSerializer,
        responses={200: s.SegmentSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        segment = segment_get(self.actor, pk)
        form = s.SegmentPatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = {"name": segment.name, "criteria": segment.criteria, **form.validated_data}
        saved = segment_save(actor=self.actor, segment=segment, **data)
        return Response(s.SegmentSerializer(saved).data)

    @extend_schema(
        tags=[TAG], summary="Delete a segment no campaign uses", responses={204: None, **problems(403, 404, 409)}
    )
    @idempotent
    def destroy(self, request: Request, pk: str) -> Response:
        segment_delete(actor=self.actor, segment=segment_get(self.actor, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        tags=[TAG],
        summary="How many members a saved segment selects now",
        responses={200: s.CountSerializer, **problems(403, 404)},
    )
    @action(detail=True, methods=["get"], url_path="count")
    def saved_count(self, request: Request, pk: str) -> Response:
        segment = segment_get(self.actor, pk)
        return Response({"count": segment_count(actor=self.actor, criteria=segment.criteria)})

    @extend_schema(
        tags=[TAG],
        summary="How many members criteria select now (the live count)",
        request=s.CriteriaSerializer,
        responses={200: s.CountSerializer, **problems(400, 403)},
    )
    @action(detail=False, methods=["post"])
    @idempotency_exempt("a read: counts members and writes nothing")
    def count(self, request: Request) -> Response:
        self.actor.require(Perm.CAMPAIGNS_MANAGE)
        form = s.CriteriaSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        criteria = criteria_clean(actor=self.actor, criteria=form.validated_data["criteria"])
        return Response({"count": segment_count(actor=self.actor, criteria=criteria)})


class CampaignViewSet(ActorMixin, viewsets.GenericViewSet):
    """Campaigns: a segment, a reward (points and/or a coupon), a message, a time and a holdout."""

    queryset = Campaign.objects.none()  # only for the schema; reads go through campaigns.selectors
    lookup_value_regex = r"\d+"

    @extend_schema(
        tags=[TAG], summary="Campaigns, newest first", responses={200: s.CampaignSerializer(many=True), **problems(403)}
    )
    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(campaigns_list(self.actor))
        return self.get_paginated_response(s.CampaignSerializer(page, many=True).data)

    @extend_schema(tags=[TAG], summary="A campaign", responses={200: s.CampaignSerializer, **problems(403, 404)})
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.CampaignSerializer(campaign_get(self.actor, pk)).data)

    @extend_schema(
        tags=[TAG],
        summary="Create a draft campaign",
        request=s.CampaignWriteSerializer,
        responses={201: s.CampaignSerializer, **problems(400, 403, 409)},
    )
    @idempotent
    def create(self, request: Request) -> Response:
        form = s.CampaignWriteSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        campaign = campaign_save(actor=self.actor, data=form.to_input())
        return Response(s.CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        tags=[TAG],
        summary="Change a campaign not yet sent",
        request=s.CampaignPatchSerializer,
        responses={200: s.CampaignSerializer, **problems(400, 403, 404, 409)},
    )
    @idempotent
    def partial_update(self, request: Request, pk: str) -> Response:
        campaign = campaign_get(self.actor, pk)
        form = s.CampaignPatchSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        saved = campaign_save(actor=self.actor, data=form.to_input(campaign_input(campaign)), campaign=campaign)
        return Response(s.CampaignSerializer(saved).data)

    @extend_schema(
        tags=[TAG],
        summary="Schedule a campaign",
        description="Draft → scheduled; the due-send job sends it at `send_at` (default: the campaign's own).",
        request=s.ScheduleSerializer,
        responses={200: s.CampaignSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def schedule(self, request: Request, pk: str) -> Response:
        campaign = campaign_get(self.actor, pk)
        form = s.ScheduleSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        saved = campaign_schedule(actor=self.actor, campaign=campaign, send_at=form.validated_data["send_at"])
        return Response(s.CampaignSerializer(saved).data)

    @extend_schema(
        tags=[TAG],
        summary="Send a campaign now",
        description="Snapshots the audience, splits off the holdout, gives each target the points, the coupon "
        "and the message. Requires `Idempotency-Key`; sending a sent campaign again changes nothing.",
        request=None,
        responses={200: s.SendResultSerializer, **problems(400, 403, 404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent(required=True)
    def send(self, request: Request, pk: str) -> Response:
        result = campaign_send(actor=self.actor, campaign=campaign_get(self.actor, pk))
        return Response(s.SendResultSerializer(result).data)

    @extend_schema(
        tags=[TAG],
        summary="The campaign's report",
        description="Reach, redemptions, revenue of targets and holdout in [sent_at, sent_at + report_days), "
        "uplift and ROI (points valued at 100 points = 1 元).",
        responses={200: s.CampaignReportSerializer, **problems(403, 404)},
    )
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: str) -> Response:
        return Response(campaign_report(self.actor, campaign_get(self.actor, pk)).as_dict())
