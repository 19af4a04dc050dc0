/** Worker kind "a": its one task says "a". */
import { defineTasks } from "../../../../src/index.ts";
import { Hello } from "./hello.ts";

export default defineTasks({ hello: () => new Hello("a") }, { start: () => [{ task: "hello" }] });
