// asl-validator ships no type declarations; this is the part the tests use.
declare module 'asl-validator' {
  interface Result {
    readonly isValid: boolean;
    readonly errors: unknown[];
    errorsText(separator?: string): string;
  }
  function validator(definition: unknown, options?: { checkPaths?: boolean; checkArn?: boolean }): Result;
  export = validator;
}
