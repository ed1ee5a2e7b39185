/**
 * Example answers of the DeepStack-compatible routes, for the OpenAPI document (and so for "Try it out" in
 * /docs). The shapes are DESIGN.md's table; the values are what a real call returns.
 */
const box = { x_min: 412, y_min: 96, x_max: 581, y_max: 301 };

export const VISION_EXAMPLES: Record<string, unknown> = {
  '/v1/vision/detection': { success: true, predictions: [{ confidence: 0.91, label: 'person', ...box }], duration: 0.042 },
  '/v1/vision/scene': { success: true, label: 'office', confidence: 0.87, duration: 0.031 },
  '/v1/vision/custom/list': { success: true, models: ['licence-plate', 'flowers'] },
  '/v1/vision/custom/:name': { success: true, predictions: [{ confidence: 0.77, label: 'licence-plate', ...box }], duration: 0.038 },
  '/v1/vision/face': { success: true, predictions: [{ confidence: 0.93, ...box }], duration: 0.027 },
  '/v1/vision/ocr': { success: true, predictions: [{ confidence: 0.98, label: 'Line 1: the quick brown fox', x_min: 12, y_min: 8, x_max: 410, y_max: 40 }], duration: 0.118 },
  '/v1/image/ocr': { success: true, predictions: [{ confidence: 0.98, label: 'Line 1: the quick brown fox', x_min: 12, y_min: 8, x_max: 410, y_max: 40 }], duration: 0.118 },
  '/v1/vision/addmodel': { success: true, message: 'model registered', duration: 1.204 },
  '/v1/vision/listmodels': { success: true, models: [{ name: 'flowers', dateupdated: '2026-12-02T09:30:00.000Z', size: 9134080 }] },
  '/v1/vision/deletemodel': { success: true, message: 'Model removed', duration: 0.004 },
  '/v1/backup': '<zip bytes: application/octet-stream, Content-Disposition: attachment; filename=Backup_20261202T093000Z.backup>',
  '/v1/restore': { success: true, duration: 2.51 },
};
