package server

import (
	"github.com/doorbook/doorbook/gen/doorbook/v1/doorbookv1connect"
	"github.com/doorbook/doorbook/server/authz"
)

// actions says which authz action each procedure is: a caller must be
// allowed it somewhere (authz.Anywhere) before the call's body is read,
// and the service checks it again on the resource the call names. A
// procedure not listed is refused, so a new one cannot slip through by
// being forgotten here.
var actions = map[string]authz.Action{
	doorbookv1connect.SyncServicePushProcedure:      authz.Sync,
	doorbookv1connect.SyncServicePullProcedure:      authz.Sync,
	doorbookv1connect.SyncServiceBootstrapProcedure: authz.Sync,

	doorbookv1connect.AttachmentServiceUploadAttachmentProcedure:   authz.Sync,
	doorbookv1connect.AttachmentServiceListAttachmentsProcedure:    authz.ReadAttachment,
	doorbookv1connect.AttachmentServiceDownloadAttachmentProcedure: authz.ReadAttachment,

	doorbookv1connect.AdminServiceListOrgNodesProcedure:          authz.ReadOrg,
	doorbookv1connect.AdminServiceListWorkersProcedure:           authz.ReadOrg,
	doorbookv1connect.AdminServiceListCategoriesProcedure:        authz.ReadOrg,
	doorbookv1connect.AdminServiceListDevicesProcedure:           authz.ReadOrg,
	doorbookv1connect.AdminServiceListCampaignsProcedure:         authz.ReadCampaign,
	doorbookv1connect.AdminServiceCreateOrgNodeProcedure:         authz.ManageOrg,
	doorbookv1connect.AdminServiceCreateWorkerProcedure:          authz.ManageOrg,
	doorbookv1connect.AdminServiceSetWorkerGridsProcedure:        authz.ManageOrg,
	doorbookv1connect.AdminServiceCreateEnrollmentCodeProcedure:  authz.ManageOrg,
	doorbookv1connect.AdminServiceMoveHouseholdProcedure:         authz.ManageOrg,
	doorbookv1connect.AdminServiceCreateAdminProcedure:           authz.AddAdmin,
	doorbookv1connect.AdminServiceRevokeDeviceProcedure:          authz.ManageDevices,
	doorbookv1connect.AdminServicePutCategoryProcedure:           authz.DefineCategory,
	doorbookv1connect.AdminServiceLoadDefaultCategoriesProcedure: authz.DefineCategory,
	doorbookv1connect.AdminServicePutCampaignProcedure:           authz.ManageCampaign,
	doorbookv1connect.AdminServiceSetRankingProcedure:            authz.ManageCampaign,
	doorbookv1connect.AdminServiceUpdateItemProcedure:            authz.UpdateItem,
	doorbookv1connect.AdminServicePutZeroReportProcedure:         authz.UpdateItem,
	doorbookv1connect.AdminServiceErasePersonalDataProcedure:     authz.Erase,
	doorbookv1connect.AdminServiceSetDevicePolicyProcedure:       authz.SetPolicy,
	doorbookv1connect.AdminServiceGetDevicePolicyProcedure:       authz.ReadOrg,
	doorbookv1connect.AdminServiceSetItemPolicyProcedure:         authz.SetPolicy,
	doorbookv1connect.AdminServiceGetItemPolicyProcedure:         authz.ReadOrg,

	doorbookv1connect.LedgerServiceImportLedgerProcedure: authz.ManageOrg,

	doorbookv1connect.ReportServiceGetProgressProcedure:          authz.ReadReport,
	doorbookv1connect.ReportServiceListReportHouseholdsProcedure: authz.ReadReport,
	doorbookv1connect.ReportServiceExportProcedure:               authz.ReadReport,
	doorbookv1connect.ReportServiceListAuditLogProcedure:         authz.ReadReport,
	doorbookv1connect.ReportServiceGetHouseholdProcedure:         authz.ReadReport,
	doorbookv1connect.ReportServiceListItemsProcedure:            authz.ReadReport,
	doorbookv1connect.ReportServiceListReportingProcedure:        authz.ReadReport,

	doorbookv1connect.SessionServiceSignOutProcedure:    authz.OwnSession,
	doorbookv1connect.SessionServiceGetSessionProcedure: authz.OwnSession,
}
