/** A module that forgets to call defineWorker: the controller must give up on it with a clear error. */
export const nothing = 0;
