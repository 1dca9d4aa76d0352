package server

import (
	"context"
	"fmt"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/doorbook/doorbook/fieldwork"
	pb "github.com/doorbook/doorbook/gen/doorbook/v1"
	"github.com/doorbook/doorbook/internal/wire"
	"github.com/doorbook/doorbook/server/store"
	"github.com/doorbook/doorbook/syncengine"
)

// Reference data and tracked items, written by admins: the server stamps
// each field it sets with its own clock, so a later edit wins field by field.

func (s *adminService) PutCategory(ctx context.Context, req *pb.PutCategoryRequest) (*pb.PutCategoryResponse, error) {
	c := syncengine.Category{Code: req.GetCode()}
	setStr := func(r *syncengine.Register[string], v *string) {
		if v != nil {
			*r = syncengine.NewRegister(*v, s.clock.Now())
		}
	}
	setStr(&c.NameZH, req.NameZh)
	setStr(&c.NameEN, req.NameEn)
	setStr(&c.ParentCode, req.ParentCode)
	if req.RevisitDays != nil {
		c.RevisitDays = syncengine.NewRegister(req.GetRevisitDays(), s.clock.Now())
	}
	if req.KeyGroup != nil {
		c.KeyGroup = syncengine.NewRegister(req.GetKeyGroup(), s.clock.Now())
	}
	if req.Deleted != nil {
		c.Deleted = syncengine.NewRegister(req.GetDeleted(), s.clock.Now())
	}
	merged, _, err := s.store.PutCategory(ctx, principal(ctx), c, false)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.PutCategoryResponse{Category: wire.CategoryToProto(&merged)}, nil
}

func (s *adminService) ListCategories(ctx context.Context, _ *pb.ListCategoriesRequest) (*pb.ListCategoriesResponse, error) {
	cats, err := s.store.ListCategories(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListCategoriesResponse{}
	for i := range cats {
		res.Categories = append(res.Categories, wire.CategoryToProto(&cats[i]))
	}
	return res, nil
}

func (s *adminService) LoadDefaultCategories(ctx context.Context, _ *pb.LoadDefaultCategoriesRequest) (*pb.LoadDefaultCategoriesResponse, error) {
	res := &pb.LoadDefaultCategoriesResponse{}
	for _, c := range fieldwork.DefaultCategorySet(s.clock.Now) {
		_, applied, err := s.store.PutCategory(ctx, principal(ctx), c, true)
		if err != nil {
			return nil, toConnect(s.log, err)
		}
		if applied {
			res.Added++
		}
	}
	cats, err := s.store.ListCategories(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	for i := range cats {
		res.Categories = append(res.Categories, wire.CategoryToProto(&cats[i]))
	}
	return res, nil
}

func (s *adminService) PutCampaign(ctx context.Context, req *pb.PutCampaignRequest) (*pb.PutCampaignResponse, error) {
	c := syncengine.Campaign{ID: req.GetId()}
	if c.ID == "" {
		c.ID = uuid.Must(uuid.NewV7()).String()
	} else if !syncengine.IsID(c.ID) {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("campaign id %q is not a UUID", c.ID))
	}
	if req.NodeId != nil {
		c.NodeID = syncengine.NewRegister(req.GetNodeId(), s.clock.Now())
	}
	if req.Name != nil {
		c.Name = syncengine.NewRegister(req.GetName(), s.clock.Now())
	}
	if req.StartsAt != nil {
		c.StartsAt = syncengine.NewRegister(req.GetStartsAt().AsTime().UnixMilli(), s.clock.Now())
	}
	if req.EndsAt != nil {
		c.EndsAt = syncengine.NewRegister(req.GetEndsAt().AsTime().UnixMilli(), s.clock.Now())
	}
	if req.GetSetQuotas() {
		q, err := wire.QuotasFromProto(req.GetQuotas())
		if err != nil {
			return nil, toConnect(s.log, err)
		}
		c.Quotas = syncengine.NewRegister(q, s.clock.Now())
	}
	if req.GetSetQuestionnaire() {
		q, err := wire.QuestionsFromProto(req.GetQuestions())
		if err != nil {
			return nil, toConnect(s.log, err)
		}
		c.Questionnaire = syncengine.NewRegister(q, s.clock.Now())
	}
	if req.Deleted != nil {
		c.Deleted = syncengine.NewRegister(req.GetDeleted(), s.clock.Now())
	}
	merged, err := s.store.PutCampaign(ctx, principal(ctx), c)
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.PutCampaignResponse{Campaign: wire.CampaignToProto(&merged)}, nil
}

func (s *adminService) ListCampaigns(ctx context.Context, _ *pb.ListCampaignsRequest) (*pb.ListCampaignsResponse, error) {
	cs, err := s.store.ListCampaigns(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	res := &pb.ListCampaignsResponse{}
	for i := range cs {
		res.Campaigns = append(res.Campaigns, wire.CampaignToProto(&cs[i]))
	}
	return res, nil
}

func (s *adminService) UpdateItem(ctx context.Context, req *pb.UpdateItemRequest) (*pb.UpdateItemResponse, error) {
	a := syncengine.Amendment{
		ID:       uuid.Must(uuid.NewV7()).String(),
		VisitID:  req.GetVisitId(),
		AuthorID: principal(ctx).ID,
		Kind:     syncengine.AmendmentKind(req.GetKind()),
		Reason:   req.GetNote(),
		Finding:  req.GetFinding(),
		Unit:     req.GetUnit(),
		CoUnits:  req.GetCoUnits(),
		Clock:    s.clock.Now(),
	}
	if req.Deadline != nil {
		a.Deadline = req.GetDeadline().AsTime().Truncate(1e6)
	}
	if !a.Kind.IsItemUpdate() {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("kind must be an item update (assign, resolve, close)"))
	}
	if err := s.store.UpdateItem(ctx, principal(ctx), a); err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.UpdateItemResponse{Amendment: wire.AmendmentToProto(&a)}, nil
}

func (s *adminService) SetRanking(ctx context.Context, req *pb.SetRankingRequest) (*pb.SetRankingResponse, error) {
	r, err := s.store.SetRanking(ctx, principal(ctx), req.GetCampaignId(), rankingFromProto(req.GetRanking()))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.SetRankingResponse{Ranking: rankingToProto(r)}, nil
}

func rankingFromProto(m *pb.Ranking) fieldwork.Ranking {
	var r fieldwork.Ranking
	for _, w := range m.GetWeights() {
		r.Weights = append(r.Weights, fieldwork.Weight{Metric: w.GetMetric(), Weight: w.GetWeight()})
	}
	for _, b := range m.GetBands() {
		r.Bands = append(r.Bands, fieldwork.Band{From: b.GetFromRank(), To: b.GetToRank(), Community: b.GetCommunityYuan(), LinkCadre: b.GetLinkCadreYuan()})
	}
	return r
}

func rankingToProto(r fieldwork.Ranking) *pb.Ranking {
	m := &pb.Ranking{}
	for _, w := range r.Weights {
		m.Weights = append(m.Weights, &pb.RankingWeight{Metric: w.Metric, Weight: w.Weight})
	}
	for _, b := range r.Bands {
		m.Bands = append(m.Bands, &pb.RewardBand{FromRank: b.From, ToRank: b.To, CommunityYuan: b.Community, LinkCadreYuan: b.LinkCadre})
	}
	return m
}

func (s *adminService) SetItemPolicy(ctx context.Context, req *pb.SetItemPolicyRequest) (*pb.SetItemPolicyResponse, error) {
	p, err := s.store.SetItemPolicy(ctx, principal(ctx), store.ItemPolicy{EscalationDays: req.GetPolicy().GetEscalationDays()})
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.SetItemPolicyResponse{Policy: &pb.ItemPolicy{EscalationDays: p.EscalationDays}}, nil
}

func (s *adminService) GetItemPolicy(ctx context.Context, _ *pb.GetItemPolicyRequest) (*pb.GetItemPolicyResponse, error) {
	p, err := s.store.ItemPolicy(ctx, principal(ctx))
	if err != nil {
		return nil, toConnect(s.log, err)
	}
	return &pb.GetItemPolicyResponse{Policy: &pb.ItemPolicy{EscalationDays: p.EscalationDays}}, nil
}
