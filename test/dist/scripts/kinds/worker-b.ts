/** Worker kind "b": its one task says "b". */
import { defineTasks } from "../../../../src/index.ts";
import { Hello } from "./hello.ts";

export default defineTasks({ hello: () => new Hello("b") }, { start: () => [{ task: "hello" }] });
