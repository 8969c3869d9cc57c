// The constraint vocabulary of the AWS service models, as consumed by the validator and the protocols.

export type Shape =
  | {
      readonly type: 'string';
      readonly min?: number;
      readonly max?: number;
      readonly pattern?: string;
      readonly enum?: readonly string[];
      /** A value validation messages leave out (login tokens, record values; see scripts/generate-model.mjs). */
      readonly sensitive?: boolean;
    }
  | { readonly type: 'integer' | 'long'; readonly min?: number; readonly max?: number }
  | { readonly type: 'boolean' }
  | { readonly type: 'timestamp' }
  | { readonly type: 'blob' }
  | { readonly type: 'list'; readonly member: Shape; readonly min?: number; readonly max?: number }
  | { readonly type: 'map'; readonly key: Shape; readonly value: Shape; readonly min?: number; readonly max?: number }
  | StructureShape;

export interface StructureShape {
  readonly type: 'structure';
  readonly members: Readonly<Record<string, Member>>;
}

export interface Member {
  readonly shape: Shape;
  readonly required?: boolean;
  /** Where a REST-JSON member travels; absent means the JSON body. */
  readonly location?: 'uri' | 'querystring' | 'header' | 'headers';
  readonly locationName?: string;
}

export interface OperationModel {
  readonly name: string;
  readonly http: { readonly method: string; readonly requestUri: string };
  readonly authtype?: string;
  readonly input: StructureShape;
  readonly errors: readonly string[];
}

export interface ErrorModel {
  readonly status: number;
  readonly fault: 'client' | 'server';
}
