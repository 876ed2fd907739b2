// The model for each toolstack kind.
import type { ToolstackKind } from '../toolstack/driver.ts';
import type { ToolstackModel } from './model.ts';
import { xapiModel } from './model-xapi.ts';
import { xlModel } from './model-xl.ts';

export const MODELS: Record<ToolstackKind, ToolstackModel> = { xl: xlModel, xapi: xapiModel };

export function modelFor(kind: ToolstackKind): ToolstackModel {
  return MODELS[kind];
}
