import { Type } from 'typebox';

/** The body of every error response. */
export const ErrorResponse = Type.Object(
  {
    error: Type.String({ description: 'Stable machine code, e.g. invalid_parameter' }),
    message: Type.String({ description: 'What went wrong, in a sentence' }),
    field: Type.Optional(Type.String({ description: 'The parameter at fault, when there is one' })),
  },
  { $id: 'ErrorResponse' },
);

/**
 * A route's error answer in its response schema: the ErrorResponse body, and what this status
 * means for this route (the document otherwise says what it means in general).
 */
export function errorAnswer(description?: string): { $ref: 'ErrorResponse#'; description?: string } {
  return description === undefined ? { $ref: 'ErrorResponse#' } : { $ref: 'ErrorResponse#', description };
}
